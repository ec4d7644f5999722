"""Framework integrations: each module imports its framework, so import the one you use.

- :mod:`lictor.sdk.integrations.langchain`: LangChain tools (and LangGraph's ToolNode).
- :mod:`lictor.sdk.integrations.openai_agents`: OpenAI Agents SDK function tools.
"""
